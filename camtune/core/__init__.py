"""Foundations every layer above uses: params (config), the dataset format (dataset), atomic
outputs (atomic), the user-facing refusal (errors), secret redaction (redaction), box geometry
(boxes). They import nothing else of camtune."""
