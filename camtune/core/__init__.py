"""Foundations every layer above uses: params (config), the dataset format (dataset), atomic
outputs (atomic), the user-facing refusal (errors), secret redaction (redaction), box geometry
(boxes), TensorFlow's start-up log level (quiet). They import nothing else of camtune."""
