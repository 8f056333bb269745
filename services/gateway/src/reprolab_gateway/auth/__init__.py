"""Accounts: passwords, browser sessions, invites and reset links, single sign-on (OIDC, LDAP)."""
