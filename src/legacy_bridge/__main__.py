from legacy_bridge.cli import main

main()
