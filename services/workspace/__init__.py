"""The workspace: server-rendered pages for the people who use Werkbrug, acting as them through the APIs."""
