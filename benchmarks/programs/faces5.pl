% Written by benchmarks/logic_programs.py (research_shapes.faces5); seeded values.
nn(cluster_net, [X], C, [c0, c1, c2, c3, c4, c5, c6, c7, c8]) :: scene_cluster(X, C).
nn(face_net, [X], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: face_expr(X, E).
face_bucket(angry, neg_high).
face_bucket(disgust, neg_low).
face_bucket(fear, neg_high).
face_bucket(happy, pos_high).
face_bucket(sad, neg_low).
face_bucket(surprise, pos_high).
face_bucket(neutral, mid).
t(_)::bucket_emotion(mid, joy); t(_)::bucket_emotion(mid, trust); t(_)::bucket_emotion(mid, fear); t(_)::bucket_emotion(mid, surprise); t(_)::bucket_emotion(mid, sadness); t(_)::bucket_emotion(mid, disgust); t(_)::bucket_emotion(mid, anger); t(_)::bucket_emotion(mid, anticipation).
t(_)::bucket_emotion(neg_high, joy); t(_)::bucket_emotion(neg_high, trust); t(_)::bucket_emotion(neg_high, fear); t(_)::bucket_emotion(neg_high, surprise); t(_)::bucket_emotion(neg_high, sadness); t(_)::bucket_emotion(neg_high, disgust); t(_)::bucket_emotion(neg_high, anger); t(_)::bucket_emotion(neg_high, anticipation).
t(_)::bucket_emotion(neg_low, joy); t(_)::bucket_emotion(neg_low, trust); t(_)::bucket_emotion(neg_low, fear); t(_)::bucket_emotion(neg_low, surprise); t(_)::bucket_emotion(neg_low, sadness); t(_)::bucket_emotion(neg_low, disgust); t(_)::bucket_emotion(neg_low, anger); t(_)::bucket_emotion(neg_low, anticipation).
t(_)::bucket_emotion(pos_high, joy); t(_)::bucket_emotion(pos_high, trust); t(_)::bucket_emotion(pos_high, fear); t(_)::bucket_emotion(pos_high, surprise); t(_)::bucket_emotion(pos_high, sadness); t(_)::bucket_emotion(pos_high, disgust); t(_)::bucket_emotion(pos_high, anger); t(_)::bucket_emotion(pos_high, anticipation).
t(_)::cluster_emotion(c0, joy); t(_)::cluster_emotion(c0, trust); t(_)::cluster_emotion(c0, fear); t(_)::cluster_emotion(c0, surprise); t(_)::cluster_emotion(c0, sadness); t(_)::cluster_emotion(c0, disgust); t(_)::cluster_emotion(c0, anger); t(_)::cluster_emotion(c0, anticipation).
t(_)::cluster_emotion(c1, joy); t(_)::cluster_emotion(c1, trust); t(_)::cluster_emotion(c1, fear); t(_)::cluster_emotion(c1, surprise); t(_)::cluster_emotion(c1, sadness); t(_)::cluster_emotion(c1, disgust); t(_)::cluster_emotion(c1, anger); t(_)::cluster_emotion(c1, anticipation).
t(_)::cluster_emotion(c2, joy); t(_)::cluster_emotion(c2, trust); t(_)::cluster_emotion(c2, fear); t(_)::cluster_emotion(c2, surprise); t(_)::cluster_emotion(c2, sadness); t(_)::cluster_emotion(c2, disgust); t(_)::cluster_emotion(c2, anger); t(_)::cluster_emotion(c2, anticipation).
t(_)::cluster_emotion(c3, joy); t(_)::cluster_emotion(c3, trust); t(_)::cluster_emotion(c3, fear); t(_)::cluster_emotion(c3, surprise); t(_)::cluster_emotion(c3, sadness); t(_)::cluster_emotion(c3, disgust); t(_)::cluster_emotion(c3, anger); t(_)::cluster_emotion(c3, anticipation).
t(_)::cluster_emotion(c4, joy); t(_)::cluster_emotion(c4, trust); t(_)::cluster_emotion(c4, fear); t(_)::cluster_emotion(c4, surprise); t(_)::cluster_emotion(c4, sadness); t(_)::cluster_emotion(c4, disgust); t(_)::cluster_emotion(c4, anger); t(_)::cluster_emotion(c4, anticipation).
t(_)::cluster_emotion(c5, joy); t(_)::cluster_emotion(c5, trust); t(_)::cluster_emotion(c5, fear); t(_)::cluster_emotion(c5, surprise); t(_)::cluster_emotion(c5, sadness); t(_)::cluster_emotion(c5, disgust); t(_)::cluster_emotion(c5, anger); t(_)::cluster_emotion(c5, anticipation).
t(_)::cluster_emotion(c6, joy); t(_)::cluster_emotion(c6, trust); t(_)::cluster_emotion(c6, fear); t(_)::cluster_emotion(c6, surprise); t(_)::cluster_emotion(c6, sadness); t(_)::cluster_emotion(c6, disgust); t(_)::cluster_emotion(c6, anger); t(_)::cluster_emotion(c6, anticipation).
t(_)::cluster_emotion(c7, joy); t(_)::cluster_emotion(c7, trust); t(_)::cluster_emotion(c7, fear); t(_)::cluster_emotion(c7, surprise); t(_)::cluster_emotion(c7, sadness); t(_)::cluster_emotion(c7, disgust); t(_)::cluster_emotion(c7, anger); t(_)::cluster_emotion(c7, anticipation).
t(_)::cluster_emotion(c8, joy); t(_)::cluster_emotion(c8, trust); t(_)::cluster_emotion(c8, fear); t(_)::cluster_emotion(c8, surprise); t(_)::cluster_emotion(c8, sadness); t(_)::cluster_emotion(c8, disgust); t(_)::cluster_emotion(c8, anger); t(_)::cluster_emotion(c8, anticipation).
t(_)::speaks(1); t(_)::speaks(2); t(_)::speaks(3); t(_)::speaks(4); t(_)::speaks(5); t(_)::speaks(6).
face_emotion(F, Y) :- face_expr(F, E), face_bucket(E, B), bucket_emotion(B, Y).
scene_emotion(S, Y) :- scene_cluster(S, C), cluster_emotion(C, Y).
nth_face(1, [F|_], F).
nth_face(N, [_|Fs], F) :- N > 1, M is N - 1, nth_face(M, Fs, F).
final_emotion(Faces, S, Y) :- length(Faces, N), speaks(K), K =< N, nth_face(K, Faces, F),
    face_emotion(F, Y).
final_emotion(Faces, S, Y) :- length(Faces, N), speaks(K), K > N, scene_emotion(S, Y).
