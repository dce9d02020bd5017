from vizcli.cli import main

main()
