% A face network over six of the recogniser's classes, in its own spelling and order (neutral
% dropped: the spec's class map renames them and renormalises); a face list walked largest
% first, each face believed in turn by one shared t() on a non-ground head; an Emo8 prior
% (an annotated disjunction of fixed probabilities) when no face is believed.
nn(face_emotion, [F], E, [joy, sadness, anger, fear, surprise, disgust]) :: face_says(F, E).

0.35::prior(joy); 0.15::prior(trust); 0.1::prior(fear); 0.1::prior(surprise);
0.1::prior(sadness); 0.05::prior(disgust); 0.05::prior(anger); 0.1::prior(anticipation).

t(0.5)::believe(F).

emotion([F|Rest], E) :- believe(F), face_says(F, E).
emotion([F|Rest], E) :- \+ believe(F), emotion(Rest, E).
emotion([], E) :- prior(E).
