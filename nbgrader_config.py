"""nbgrader configuration: run plain nbgrader commands from the repository root.

solutions/<assignment>/  the instructor's source notebooks (solutions + hidden tests)
exercises/<assignment>/  the released student notebooks (`nbgrader generate_assignment`)
submitted/, autograded/, feedback/, gradebook.db  the instructor's working state (git-ignored)
"""
import os

c = get_config()  # noqa: F821  (provided by nbgrader)

# the directory holding this file (the repo root, or a scratch copy of the course)
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.db_url = "sqlite:///gradebook.db"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# each solution runs well under a minute on a 2-core CPU; a cell that runs longer is a bug
c.ExecutePreprocessor.timeout = 120
c.Execute.timeout = 120
