% A plain annotated disjunction (sums to 1).
0.2::color(red); 0.5::color(green); 0.3::color(blue).
bright :- color(red).
bright :- color(green).
query(color(_)).
query(bright).
