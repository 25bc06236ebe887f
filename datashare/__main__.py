from datashare.cli import main

main()
