% Valence/arousal buckets with arithmetic comparisons (D is abs(F - S), D > 1).
0.1::val(face, 0); 0.2::val(face, 1); 0.3::val(face, 2); 0.4::val(face, 3).
0.25::val(scene, 0); 0.25::val(scene, 1); 0.25::val(scene, 2); 0.25::val(scene, 3).
conflict :- val(face, F), val(scene, S), D is abs(F - S), D > 1.
bucket(low) :- val(face, V), V < 2.
bucket(high) :- val(face, V), V >= 2.
agreed(B) :- bucket(B), \+ conflict.
query(conflict). query(agreed(_)).
