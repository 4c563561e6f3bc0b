"""``airflow campaigns ...``: ``commands`` declares the command group, a module per resource its commands."""
