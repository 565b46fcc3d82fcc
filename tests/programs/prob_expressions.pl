% Probabilities written as arithmetic expressions.
1/3::a. 0.5*0.5::b. 1-0.9::c. 2/7::d; 3/7::e.
query(a). query(b). query(c). query(d). query(e).
