from evpcli.cli import entry

entry()
