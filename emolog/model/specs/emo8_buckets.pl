% Emo8 through valence/arousal buckets: the seed system's source choice, with each face's
% expression mapped to a bucket by a fixed table and each bucket's Emo8 distribution learned.
%
% The scene predicts Emo8 directly (its net's domain is the 8 Plutchik families); a face's
% basic-7 expression goes to one of four valence/arousal buckets (the table below, the same as
% emolog.simulate.EXPRESSION_BUCKET), and each bucket chooses an Emo8 emotion by a learnable
% annotated disjunction: the 32 t(_) of bucket_emotion/2.

nn(scene_net, [X], E, [joy, trust, fear, surprise, sadness, disgust, anger, anticipation]) :: scene_emotion(X, E).
nn(face_net, [X, F], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: face_expression(X, F, E).
nn(available, [X, F]) :: face_available(X, F).

face(face1). face(face2). face(face3).

t(_)::source(scene); t(_)::source(face1); t(_)::source(face2); t(_)::source(face3).

bucket(happy, pos_high). bucket(surprise, pos_high). bucket(neutral, pos_low).
bucket(angry, neg_high). bucket(fear, neg_high). bucket(disgust, neg_low). bucket(sad, neg_low).

t(_)::bucket_emotion(pos_high, joy); t(_)::bucket_emotion(pos_high, trust); t(_)::bucket_emotion(pos_high, fear); t(_)::bucket_emotion(pos_high, surprise); t(_)::bucket_emotion(pos_high, sadness); t(_)::bucket_emotion(pos_high, disgust); t(_)::bucket_emotion(pos_high, anger); t(_)::bucket_emotion(pos_high, anticipation).
t(_)::bucket_emotion(pos_low, joy); t(_)::bucket_emotion(pos_low, trust); t(_)::bucket_emotion(pos_low, fear); t(_)::bucket_emotion(pos_low, surprise); t(_)::bucket_emotion(pos_low, sadness); t(_)::bucket_emotion(pos_low, disgust); t(_)::bucket_emotion(pos_low, anger); t(_)::bucket_emotion(pos_low, anticipation).
t(_)::bucket_emotion(neg_high, joy); t(_)::bucket_emotion(neg_high, trust); t(_)::bucket_emotion(neg_high, fear); t(_)::bucket_emotion(neg_high, surprise); t(_)::bucket_emotion(neg_high, sadness); t(_)::bucket_emotion(neg_high, disgust); t(_)::bucket_emotion(neg_high, anger); t(_)::bucket_emotion(neg_high, anticipation).
t(_)::bucket_emotion(neg_low, joy); t(_)::bucket_emotion(neg_low, trust); t(_)::bucket_emotion(neg_low, fear); t(_)::bucket_emotion(neg_low, surprise); t(_)::bucket_emotion(neg_low, sadness); t(_)::bucket_emotion(neg_low, disgust); t(_)::bucket_emotion(neg_low, anger); t(_)::bucket_emotion(neg_low, anticipation).

emotion(X, E) :- source(scene), scene_emotion(X, E).
emotion(X, E) :- source(F), face(F), face_expression(X, F, Y), bucket(Y, B), bucket_emotion(B, E).

available(X, scene).
available(X, F) :- face(F), face_available(X, F).
ok(X) :- source(S), available(X, S).

query(emotion(X, joy)). query(emotion(X, trust)). query(emotion(X, fear)). query(emotion(X, surprise)).
query(emotion(X, sadness)). query(emotion(X, disgust)). query(emotion(X, anger)). query(emotion(X, anticipation)).
evidence(ok(X)).
