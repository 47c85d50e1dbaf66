"""Looking inside trained models: attention maps and teacher-student alignment agreement."""
