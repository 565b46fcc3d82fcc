% Up to three faces, each read through a fixed expression -> valence/arousal bucket table and a
% learnable bucket -> emotion disjunction (one per bucket, shared by every face in it); a
% learnable choice says which face speaks for the image, the scene when there is none.
nn(face_net, [X], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: face_expr(X, E).
nn(scene_net, [X], Y, [joy, trust, anger, sadness]) :: scene_emotion(X, Y).
face_bucket(angry, neg_high). face_bucket(disgust, neg_low). face_bucket(fear, neg_high).
face_bucket(happy, pos_high). face_bucket(sad, neg_low). face_bucket(surprise, pos_high).
face_bucket(neutral, mid).
t(_)::bucket_emotion(neg_high, joy); t(_)::bucket_emotion(neg_high, trust); t(_)::bucket_emotion(neg_high, anger); t(_)::bucket_emotion(neg_high, sadness).
t(_)::bucket_emotion(neg_low, joy); t(_)::bucket_emotion(neg_low, trust); t(_)::bucket_emotion(neg_low, anger); t(_)::bucket_emotion(neg_low, sadness).
t(_)::bucket_emotion(pos_high, joy); t(_)::bucket_emotion(pos_high, trust); t(_)::bucket_emotion(pos_high, anger); t(_)::bucket_emotion(pos_high, sadness).
t(_)::bucket_emotion(mid, joy); t(_)::bucket_emotion(mid, trust); t(_)::bucket_emotion(mid, anger); t(_)::bucket_emotion(mid, sadness).
t(0.5)::speaks(1); t(0.3)::speaks(2); t(0.2)::speaks(3).
face_emotion(F, Y) :- face_expr(F, E), face_bucket(E, B), bucket_emotion(B, Y).
nth_face(1, [F|_], F).
nth_face(N, [_|Fs], F) :- N > 1, M is N - 1, nth_face(M, Fs, F).
final_emotion([], S, Y) :- scene_emotion(S, Y).
final_emotion(Faces, S, Y) :- Faces = [_|_], length(Faces, N), speaks(K), K =< N, nth_face(K, Faces, F), face_emotion(F, Y).
final_emotion(Faces, S, Y) :- Faces = [_|_], length(Faces, N), speaks(K), K > N, scene_emotion(S, Y).
