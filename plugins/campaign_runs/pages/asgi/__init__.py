"""The pages under any other auth manager: a FastAPI app mounted by the JSON API at ``/campaign-runs/ui``."""
