"""The local platform's mail folder (``local/mail.py``): what the app sends through SES on moto
is written once per message to ``<state dir>/mail/<nnnn>-<to>.txt``, as text a person reads
(the sign-in link in full). The writer is driven here without its thread; the reader of moto's
sent messages once against in-process moto."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from local import mail

LINK = "http://127.0.0.1:8000/store/cloud-lite/login/confirm?token=abc.def&x=1"


def message(
    to: str = "billing@cloud-lite.example", subject: str = "Sign in", n: int = 1, **extra: Any
) -> SimpleNamespace:
    """A message as moto's SES keeps it (``moto.ses.models.Message``): the HTML body when the
    mail had one."""
    values: dict[str, Any] = {
        "id": f"msg-{n}",
        "source": "billing@bss.local",
        "subject": subject,
        "body": (
            "<p>Here is your link to sign in to Cloud Lite:</p>"
            f'<p><a href="{LINK.replace("&", "&amp;")}">Sign in</a></p>'
            "<p>The link works once, for 15 minutes.</p>"
        ),
        "destinations": {"ToAddresses": [to], "CcAddresses": [], "BccAddresses": []},
    }
    values.update(extra)
    return SimpleNamespace(**values)


def test_a_message_is_written_as_text_with_its_link_in_full() -> None:
    to, text = mail.render(message(), datetime(2026, 12, 5, 8, 0, tzinfo=UTC))
    assert to == "billing@cloud-lite.example"
    head, body = text.split("\n\n", 1)
    assert head.splitlines() == [
        "To: billing@cloud-lite.example",
        "From: billing@bss.local",
        "Subject: Sign in",
        "Date: 2026-12-05 08:00:00 UTC",
        "Message-Id: msg-1",
    ]
    assert body == (
        "Here is your link to sign in to Cloud Lite:\n\n"
        f"Sign in: {LINK}\n\n"  # &amp; unescaped: the address as the browser would take it
        "The link works once, for 15 minutes.\n"
    )


def test_a_plain_text_body_stays_as_it_is() -> None:
    _, text = mail.render(message(body="Your invoice INV-000001 <EUR 10.00>\n"))
    assert text.endswith("\n\nYour invoice INV-000001 <EUR 10.00>\n")


def test_a_raw_message_shows_its_subject_recipient_and_text_part() -> None:
    raw = (
        "From: billing@bss.local\nTo: it@customer-x.example\nSubject: Invoice INV-000002\n"
        "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nYour invoice is attached.\n"
    )
    found = SimpleNamespace(id="raw-1", source="billing@bss.local", destinations=[], raw_data=raw)
    to, text = mail.render(found)
    assert to == "it@customer-x.example"
    assert "Subject: Invoice INV-000002" in text
    assert text.endswith("\n\nYour invoice is attached.\n")


def test_each_message_is_written_once_numbered_in_order(tmp_path: Path) -> None:
    writer = mail.MailWriter(tmp_path / "mail")
    first = writer.write_new([message(n=1), message("it@customer-x.example", n=2)])
    assert [p.name for p in first] == [
        "0001-billing@cloud-lite.example.txt",
        "0002-it@customer-x.example.txt",
    ]
    # moto's list only grows: the next read holds the old ones too
    again = writer.write_new([message(n=1), message(n=2), message("it@customer-z.example", n=3)])
    assert [p.name for p in again] == ["0003-it@customer-z.example.txt"]
    assert sorted(p.name for p in (tmp_path / "mail").iterdir()) == [
        "0001-billing@cloud-lite.example.txt",
        "0002-it@customer-x.example.txt",
        "0003-it@customer-z.example.txt",
    ]
    assert "To: it@customer-z.example" in again[0].read_text(encoding="utf-8")


def test_numbering_goes_on_after_a_restart_and_a_fresh_start_clears_the_old_mail(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "mail"
    mail.MailWriter(folder).write_new([message(n=1), message(n=2)])
    (folder / "notes.md").write_text("mine", encoding="utf-8")
    # a restart (moto's SES starts empty, ids are new): on from 3, nothing overwritten
    [third] = mail.MailWriter(folder).write_new([message(n=7)])
    assert third.name == "0003-billing@cloud-lite.example.txt"
    # a fresh demo: the old mail goes (its links lead nowhere), other files stay
    [fresh] = mail.MailWriter(folder, fresh=True).write_new([message(n=8)])
    assert fresh.name == "0001-billing@cloud-lite.example.txt"
    assert sorted(p.name for p in folder.iterdir()) == [fresh.name, "notes.md"]


def test_an_address_is_made_safe_for_a_file_name(tmp_path: Path) -> None:
    writer = mail.MailWriter(tmp_path)
    [path] = writer.write_new([message('"Odd Name" <x/y@example.com>')])
    assert path.name == "0001-_Odd_Name_x_y@example.com_.txt"
    assert path.parent == tmp_path
    [nobody] = writer.write_new([message(n=2, destinations={})])
    assert nobody.name == "0002-nobody.txt"


def test_the_drop_writes_on_each_poll_and_says_once_when_it_cannot_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sent: list[Any] = [message(n=1)]
    broken = False

    def read() -> list[Any]:
        if broken:
            raise RuntimeError("moto moved on")
        return list(sent)

    drop = mail.MailDrop(tmp_path / "mail", read, interval=60)
    assert [p.name for p in drop.poll()] == ["0001-billing@cloud-lite.example.txt"]
    assert drop.poll() == []
    broken = True
    with caplog.at_level(logging.WARNING, logger="local.mail"):
        assert drop.poll() == [] and drop.poll() == []
    assert [r.getMessage() for r in caplog.records] == [
        "cannot write the mail sent through SES to files: moto moved on"
    ]
    broken = False
    sent.append(message(n=2))
    drop.stop()  # never started: stop still writes what came last
    assert drop.directory == tmp_path / "mail"
    assert len(list(drop.directory.iterdir())) == 2


def test_the_reader_of_motos_sent_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Against moto's own SES (in process): what ``send_email`` sent, as the writer takes it."""
    import boto3
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        ses = boto3.client("ses", region_name="eu-central-1")
        ses.verify_email_identity(EmailAddress="billing@bss.local")
        ses.send_email(
            Source="billing@bss.local",
            Destination={"ToAddresses": ["it@customer-z.example"]},
            Message={
                "Subject": {"Data": "Sign in to Cloud Resell"},
                "Body": {
                    "Text": {"Data": f"Sign in: {LINK}"},
                    "Html": {"Data": f'<p><a href="{LINK}">Sign in</a></p>'},
                },
            },
        )
        found = mail.moto_sent_messages("eu-central-1")()
        assert mail.moto_sent_messages("us-east-1")() == []
    [sent] = found
    to, text = mail.render(sent)
    assert to == "it@customer-z.example"
    assert "Subject: Sign in to Cloud Resell" in text
    assert f"Sign in: {LINK}" in text
