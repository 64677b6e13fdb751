"""``roomquake schema``: print the JSON Schema of experiment files."""

from __future__ import annotations

import click

from chaos.experiment.schema import schema_text


@click.command(name="schema")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write to a file.")
def command(output: str | None) -> None:
    """Print the JSON Schema of experiment files, for editors.

    \b
    Example (VS Code with the YAML extension, first line of an experiment):
      # yaml-language-server: $schema=./experiment.schema.json
      roomquake schema -o experiment.schema.json
    """
    text = schema_text()
    if output:
        with open(output, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        click.echo(text, nl=False)
