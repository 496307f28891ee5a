"""Every `thinkcap bench NAME` target (cli.py dispatches). Benches sit on top: they may import
training/, evaluation/, tasks/, scoring/ and budget/, and nothing imports them."""
