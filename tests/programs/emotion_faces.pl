% Variable-length face lists (the final_emotion([F1,F2], Scene, E) pattern), three face counts.
0.6::face_em(f1, happy); 0.4::face_em(f1, sad).
0.3::face_em(f2, happy); 0.7::face_em(f2, sad).
0.5::face_em(f3, happy); 0.5::face_em(f3, sad).
0.2::scene_em(s, happy); 0.8::scene_em(s, sad).
0.5::trust(face); 0.5::trust(scene).
final_emotion([], S, E) :- scene_em(S, E).
final_emotion([F|Fs], S, E) :- trust(face), face_em(F, E).
final_emotion([F|Fs], S, E) :- trust(scene), scene_em(S, E).
query(final_emotion([], s, happy)).
query(final_emotion([f1], s, happy)).
query(final_emotion([f1, f2], s, sad)).
