"""Back ordering (SPEC §4, R11–R18): stream-driven replication from every reseller tenant to its
provider. Not built yet: it is issue 3. The tables it replicates from (accounts, subscriptions)
already stream NEW_AND_OLD_IMAGES, and accounts and subscriptions already carry ``mirrored`` and
``source`` (R15's locks on mirrors are enforced by the orders and core domains)."""
