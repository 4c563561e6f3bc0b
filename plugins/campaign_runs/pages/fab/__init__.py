"""The pages under FAB's auth manager: Flask-AppBuilder views under ``/pluginsv2/campaigns``."""
