from thinkcap.cli import main

raise SystemExit(main())
