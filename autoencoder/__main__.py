from autoencoder.cli import main

raise SystemExit(main())
