"""`make run`: the deployed pipeline on one machine, with moto as its AWS."""
