% Two annotated disjunctions that can both make the same head true.
0.3::a; 0.5::b.
0.2::a; 0.2::c.
query(a). query(b). query(c).
