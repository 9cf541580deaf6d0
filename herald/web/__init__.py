"""The browser page (inbox and preference center) as static files, served by herald/api/web.py."""
