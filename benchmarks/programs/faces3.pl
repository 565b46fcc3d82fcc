% Written by benchmarks/logic_programs.py (research_shapes.faces3); seeded values.
nn(face_net, [X], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: face_expr(X, E).
face_va(angry, -2.0, 4.5).
face_va(disgust, -2.2, 3.5).
face_va(fear, -2.4, 4.8).
face_va(happy, 2.4, 3.8).
face_va(sad, -2.3, 1.6).
face_va(surprise, 0.8, 4.9).
face_va(neutral, 0.0, 2.0).
t(_)::bucket_emotion(neg_high, joy); t(_)::bucket_emotion(neg_high, trust); t(_)::bucket_emotion(neg_high, fear); t(_)::bucket_emotion(neg_high, surprise); t(_)::bucket_emotion(neg_high, sadness); t(_)::bucket_emotion(neg_high, disgust); t(_)::bucket_emotion(neg_high, anger); t(_)::bucket_emotion(neg_high, anticipation).
t(_)::bucket_emotion(neg_low, joy); t(_)::bucket_emotion(neg_low, trust); t(_)::bucket_emotion(neg_low, fear); t(_)::bucket_emotion(neg_low, surprise); t(_)::bucket_emotion(neg_low, sadness); t(_)::bucket_emotion(neg_low, disgust); t(_)::bucket_emotion(neg_low, anger); t(_)::bucket_emotion(neg_low, anticipation).
t(_)::bucket_emotion(pos_high, joy); t(_)::bucket_emotion(pos_high, trust); t(_)::bucket_emotion(pos_high, fear); t(_)::bucket_emotion(pos_high, surprise); t(_)::bucket_emotion(pos_high, sadness); t(_)::bucket_emotion(pos_high, disgust); t(_)::bucket_emotion(pos_high, anger); t(_)::bucket_emotion(pos_high, anticipation).
t(_)::bucket_emotion(pos_low, joy); t(_)::bucket_emotion(pos_low, trust); t(_)::bucket_emotion(pos_low, fear); t(_)::bucket_emotion(pos_low, surprise); t(_)::bucket_emotion(pos_low, sadness); t(_)::bucket_emotion(pos_low, disgust); t(_)::bucket_emotion(pos_low, anger); t(_)::bucket_emotion(pos_low, anticipation).
t(_)::bucket_emotion(mid, joy); t(_)::bucket_emotion(mid, trust); t(_)::bucket_emotion(mid, fear); t(_)::bucket_emotion(mid, surprise); t(_)::bucket_emotion(mid, sadness); t(_)::bucket_emotion(mid, disgust); t(_)::bucket_emotion(mid, anger); t(_)::bucket_emotion(mid, anticipation).
face_point(F, V, A) :- face_expr(F, E), face_va(E, V, A).
bucket(V, A, mid) :- abs(V) =< 0.5.
bucket(V, A, pos_high) :- V > 0.5, A > 3.
bucket(V, A, pos_low) :- V > 0.5, A =< 3.
bucket(V, A, neg_high) :- V < -0.5, A > 3.
bucket(V, A, neg_low) :- V < -0.5, A =< 3.
final_emotion([F1, F2, F3], Y) :- face_point(F1, V1, A1), face_point(F2, V2, A2),
    face_point(F3, V3, A3), V is (V1 + V2 + V3) / 3, A is (A1 + A2 + A3) / 3,
    bucket(V, A, B), bucket_emotion(B, Y).
