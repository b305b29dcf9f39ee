from hbmon.cli import main

raise SystemExit(main())
