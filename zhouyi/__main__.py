from zhouyi.cli import main

raise SystemExit(main())
