"""python -m train.push CONFIG|RUN_DIR [key=value ...]: gate, card, exports, then the Hub or a local folder."""

import sys

from configs.cli import run
from train.push.publish import main

if __name__ == "__main__":
    sys.exit(run(main))
