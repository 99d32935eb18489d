"""`python -m camtune ...` is `camtune ...`."""
from camtune.runners.cli import main

raise SystemExit(main())
