from bookme.cli import main

raise SystemExit(main())
