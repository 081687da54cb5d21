"""The web pages: HTML templates, their CSS and JS, and the Python that fills and serves them.

Everything a page needs is under this folder and served by our own routes (`api/routes/pages.py`): no CDN, no web
fonts, no inline scripts or styles, so the pages satisfy a strict Content-Security-Policy.
"""
