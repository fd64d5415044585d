"""The claim rules that, until now, only the notebook kernels ran: Fig 9 (tail), Fig 2 (dynamics),
Fig 4 (regularizer), Table 3 (stories) and the scaling study. Each test builds a small table whose
answer is known by construction (unequal values, so that a median is not a mean; rows out of
order, so that a sort matters; rows that must be left out, with values that would change the
answer if they were counted) and checks the numbers, the text a reader sees and the verdict, on
both sides of every threshold of the rules."""
from __future__ import annotations

import math
import re
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lin_utils import claims

R, P, N, NOT_RUN = claims.REPLICATED, claims.PARTLY, claims.NOT_REPLICATED, claims.NOT_RUN


