from .assets import main

main()
