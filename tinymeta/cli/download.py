"""``tinymeta omniglot-download``: fetch the official Omniglot zips and convert them to the 28x28 npz files.

Exit status 0 on success, 2 for bad arguments, 1 if the download or the conversion fails (the message
says what went wrong). See :func:`tinymeta.omniglot.download_omniglot`.
"""

from __future__ import annotations

from . import args as a

PROG = "tinymeta omniglot-download"


def build_parser() -> a.Parser:
    from ..cache import default_cache_dir
    from ..omniglot import OFFICIAL_URL

    p = a.Parser(
        prog=PROG,
        description="Download images_background.zip and images_evaluation.zip (Lake et al. 2015) and write "
        "omniglot28_{variant}_{background,evaluation}.npz into DIR, checked against their content hashes.",
    )
    p.add_argument("--data-dir", default=None, help=f"target directory (default {default_cache_dir()})")
    p.add_argument("--variants", nargs="+", choices=("binary", "gray"), default=["binary"])
    p.add_argument("--base-url", default=OFFICIAL_URL, help="URL prefix of the two zips")
    p.add_argument("--overwrite", action="store_true", help="replace existing npz files")
    p.add_argument("--keep-zips", action="store_true", help="keep the downloaded zips")
    return p


def main(argv=None) -> int:
    """Run ``tinymeta omniglot-download``; returns the exit status."""
    from ..omniglot import ENV_VAR, OmniglotError, download_omniglot

    args = build_parser().parse_args(argv)
    try:
        written = download_omniglot(args.data_dir, base_url=args.base_url, variants=tuple(args.variants),
                                    overwrite=args.overwrite, keep_zips=args.keep_zips)  # fmt: skip
    except (OmniglotError, OSError) as e:
        return a.fail(PROG, e, status=1)
    where = next(iter(written.values())).parent
    print(f"Omniglot is in {where}: pass --data-dir {where} or set {ENV_VAR}={where}")
    return 0
