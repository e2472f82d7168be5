"""Outbound notifications: signed webhooks derived from the committed audit log."""
