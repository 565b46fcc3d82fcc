% Very small and very large probabilities (number formatting).
1e-7::tiny. 0.999999999::huge. 0.00001234::small. 0.123456785::r1. 0.5e-5::s2.
both :- tiny, huge.
query(tiny). query(huge). query(small). query(both). query(r1). query(s2).
