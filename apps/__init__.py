"""The applications people use: the ``cdp`` command line (``apps.cli``) and the web app and API
(``apps.web``). They sit on top of the house and may import anything below them."""
