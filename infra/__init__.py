"""Deployment: the merge template generated from the models (``python -m infra.template``) and
the checked deployment package (``python -m infra.package``)."""
