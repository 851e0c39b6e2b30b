"""Parties and transports: validated frames between endpoints, threads or TCP/TLS, stats."""
