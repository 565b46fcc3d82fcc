% A probability above 1.
1.5::a.
query(a).
