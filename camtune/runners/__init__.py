"""How the steps are run: the `camtune` command (cli), the parent Prefect flows for many users
(pipeline), per-user workspaces and shared stages (orchestration), the object store workers share
(remote), the local Prefect server (prefect_server), the task runner choice (task_runners)."""
