"""Pure domain of gongmo: the lifecycle table and the rules. No I/O."""
