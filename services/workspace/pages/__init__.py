"""The workspace's pages, one blueprint per kind of user; common.py holds what they share."""
