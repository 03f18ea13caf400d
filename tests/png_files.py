"""Shared helper for the tests of plots and of the command line: what a written PNG says it shows."""

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_title(path):
    """The PNG's Title text chunk (what the plot says it shows), after checking the signature."""
    data = open(path, "rb").read()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    i = data.find(b"tEXtTitle\x00")
    assert i > 0, f"{path} carries no title"
    n = int.from_bytes(data[i - 4:i], "big")
    return data[i + 10:i + 4 + n].decode("latin-1")
