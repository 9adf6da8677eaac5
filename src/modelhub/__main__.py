from modelhub.cli.main import main

main()
