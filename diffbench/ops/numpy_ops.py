"""The float64 namespace: numpy itself provides the whole contract."""

import numpy

ops = numpy
