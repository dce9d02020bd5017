from vizcli.cli import app

app(prog_name="vizcli")
