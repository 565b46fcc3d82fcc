% Negation of annotated-disjunction heads.
1/3::d(1); 1/3::d(2); 1/3::d(3).
not_one :- \+ d(1).
neither :- \+ d(1), \+ d(2).
query(not_one). query(neither).
