% Constants that need quoting, strings, negative and float numbers as query arguments.
0.5::p('Hello World'). 0.25::p("a string"). 0.125::p(-3). 0.1::p(2.5). 0.3::p(f(x, [1, 2])). 0.2::p(a-b).
query(p(_)).
