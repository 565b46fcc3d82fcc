% Context dominance: the scene's context (a trainable head over the scene features) dominates
% with a probability that depends on the context (a flexible probability); a dominant context
% gives its emotion by fixed probabilistic facts, otherwise (negation) the largest face does,
% read as Emo8 through annotated disjunctions with bodies.
nn(context_net, [I], C, [aquatic_environment, urban, nature, indoor]) :: scene_context(I, C).
nn(expr, [F], X, [angry, disgust, fear, happy, sad, surprise, neutral]) :: expression(F, X).

strength(aquatic_environment, 0.8). strength(urban, 0.3). strength(nature, 0.6). strength(indoor, 0.2).
P::context_dom(I) :- scene_context(I, C), strength(C, P).

0.49::context_to_emotion(aquatic_environment, joy); 0.21::context_to_emotion(aquatic_environment, surprise);
    0.3::context_to_emotion(aquatic_environment, trust).
0.4::context_to_emotion(urban, anticipation); 0.3::context_to_emotion(urban, anger); 0.3::context_to_emotion(urban, sadness).
0.5::context_to_emotion(nature, joy); 0.3::context_to_emotion(nature, trust); 0.2::context_to_emotion(nature, fear).
0.4::context_to_emotion(indoor, sadness); 0.3::context_to_emotion(indoor, trust); 0.3::context_to_emotion(indoor, disgust).

0.8::face_emotion(F, joy); 0.2::face_emotion(F, trust) :- expression(F, happy).
0.7::face_emotion(F, sadness); 0.3::face_emotion(F, disgust) :- expression(F, sad).
0.6::face_emotion(F, anger); 0.4::face_emotion(F, disgust) :- expression(F, angry).
0.9::face_emotion(F, fear); 0.1::face_emotion(F, surprise) :- expression(F, fear).
0.8::face_emotion(F, disgust); 0.2::face_emotion(F, anger) :- expression(F, disgust).
0.7::face_emotion(F, surprise); 0.3::face_emotion(F, anticipation) :- expression(F, surprise).
0.5::face_emotion(F, trust); 0.5::face_emotion(F, anticipation) :- expression(F, neutral).

emotion(Faces, I, E) :- context_dom(I), scene_context(I, C), context_to_emotion(C, E).
emotion([F|_], I, E) :- \+ context_dom(I), face_emotion(F, E).
emotion([], I, E) :- \+ context_dom(I), scene_context(I, C), context_to_emotion(C, E).
